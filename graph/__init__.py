"""Knowledge graph: entities, relations and subgraph retrieval (built in its own issue)."""

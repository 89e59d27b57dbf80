"""What the faces share: the documents the CLI, web API and reports build from the store and the plan."""

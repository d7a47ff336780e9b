"""Everything about being a Stash plugin: the log protocol, settings, the GraphQL client.

`log` and `settings` use only the standard library, so the hook may import them.
"""

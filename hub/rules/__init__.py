"""Output rules: the parser (hub.toml's [[rules]]), the condition checker
(an AST whitelist) and the router that fires output adapters (docs/rules.md)."""

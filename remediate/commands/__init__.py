"""One module per ``memcg-fix`` verb; each exposes ``register(subparsers)``."""

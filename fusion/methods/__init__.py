"""Built-in fusion methods; importing this package registers them."""

from fusion.methods import simple  # noqa: F401

"""Built-in fusion methods; importing this package registers them."""

from fusion.methods import (
    coconet_method,  # noqa: F401
    densefuse,  # noqa: F401
    dwt,  # noqa: F401
    external,  # noqa: F401
    gff,  # noqa: F401
    laplacian,  # noqa: F401
    simple,  # noqa: F401
)

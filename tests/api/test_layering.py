"""Lines in their rooms: the routers share what they need through `api.deps` and never
import each other, and what runs beside the API (the worker, the use cases, the pages)
does not import it."""

import ast
from pathlib import Path

import pytest

import referrals

SOURCE = Path(referrals.__file__).parent


def imported(path: Path) -> set[str]:
    """The modules `path` imports, `from a import b` counted as both `a` and `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_of(path: Path) -> str:
    return ".".join(("referrals", *path.relative_to(SOURCE).with_suffix("").parts))


ROUTERS = sorted(
    module_of(path) for path in (SOURCE / "api").glob("*.py") if "APIRouter(" in path.read_text()
)


def test_the_routers_are_found() -> None:
    assert {"referrals.api.routes", "referrals.api.portal_routes"} <= set(ROUTERS)
    assert "referrals.api.deps" not in ROUTERS


@pytest.mark.parametrize("router", ROUTERS)
def test_a_router_imports_no_other_router(router: str) -> None:
    path = SOURCE / Path(*router.split(".")[1:]).with_suffix(".py")
    assert imported(path) & (set(ROUTERS) - {router}) == set()


@pytest.mark.parametrize(
    "path", [SOURCE / "worker.py", SOURCE / "metrics.py", *(SOURCE / "web").rglob("*.py")]
)
def test_what_runs_beside_the_api_does_not_import_it(path: Path) -> None:
    assert not any(name.startswith("referrals.api") for name in imported(path))


@pytest.mark.parametrize("path", sorted((SOURCE / "services").rglob("*.py")))
def test_the_use_cases_import_neither_the_api_nor_the_pages(path: Path) -> None:
    layers = ("referrals.api", "referrals.web", "fastapi", "itsdangerous")
    assert not any(name.startswith(layers) for name in imported(path))

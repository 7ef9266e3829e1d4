"""The floor of the cheapest route: a bare Starlette app whose `/healthz` answers JSON.

Served by uvicorn with the options `referrals serve` passes (`src/referrals/cli.py`):
one process, uvicorn's default loop and HTTP parser (uvloop and httptools where
installed), log level info, no access log (the benchmark serves ours with
`--no-access-log`), keep-alive 75 s. Run from the project's venv, so the server and
Starlette are the very versions `referrals` serves with.

    python -m bench.peers.starlette_app PORT
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/healthz", healthz)])

if __name__ == "__main__":
    uvicorn.run(
        "bench.peers.starlette_app:app",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        log_level="info",
        access_log=False,
        timeout_keep_alive=75,
    )

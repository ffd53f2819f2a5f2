"""Pipedrive webhooks in a Starlette (or FastAPI) app: pdwebhook's ASGI app mounted at
/pipedrive.

    PDW_USER=pipedrive PDW_PASSWORD=s3cret uvicorn starlette_app:app

FastAPI is the same: ``api.mount("/pipedrive", pdwebhook.asgi.App(receiver))``. The
receiver's handlers run in the loop's thread pool (``run_in_thread=True``); with
PDW_SPOOL the durable intake answers once the delivery is stored and the handlers run on
its worker threads (it is started and stopped with the app's lifespan).
"""
import contextlib
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import pdwebhook
import pdwebhook.asgi

credentials = [(os.environ.get("PDW_USER", "pipedrive"), os.environ["PDW_PASSWORD"])]
spool = os.environ.get("PDW_SPOOL")
receiver = pdwebhook.Intake(spool, credentials) if spool else pdwebhook.Receiver(credentials)
seen = {"events": 0}


@receiver.on("*.*")
def every_event(event):
    seen["events"] += 1
    print("event", event.name, event.entity_id, flush=True)


async def index(request):
    return JSONResponse({"service": "starlette + pdwebhook", "events": seen["events"]})


@contextlib.asynccontextmanager
async def lifespan(app):
    if spool:
        receiver.start()
    yield
    if spool:
        receiver.close()


app = Starlette(routes=[Route("/", index), Mount("/pipedrive", app=pdwebhook.asgi.App(receiver))],
                lifespan=lifespan)

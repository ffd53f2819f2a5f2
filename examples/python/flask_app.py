"""Pipedrive webhooks in a Flask app: pdwebhook's WSGI middleware takes /pipedrive, Flask
keeps every other route.

    PDW_USER=pipedrive PDW_PASSWORD=s3cret gunicorn -k gthread --threads 8 flask_app:app
    # durable (ack only once stored; handlers run after the answer, on worker threads):
    PDW_SPOOL=/var/spool/pdwebhook PDW_USER=... PDW_PASSWORD=... gunicorn ... flask_app:app

With PDW_SPOOL use one worker process per spool directory (the journal is locked), and
do not --preload (the intake's threads belong to the process that serves).
"""
import os

from flask import Flask, jsonify

import pdwebhook
import pdwebhook.wsgi

app = Flask(__name__)
credentials = [(os.environ.get("PDW_USER", "pipedrive"), os.environ["PDW_PASSWORD"])]
spool = os.environ.get("PDW_SPOOL")
receiver = pdwebhook.Intake(spool, credentials) if spool else pdwebhook.Receiver(credentials)
seen = {"events": 0}


@receiver.on("*.*")
def every_event(event):
    seen["events"] += 1
    app.logger.info("event %s id=%s changed=%s", event.name, event.entity_id,
                    ",".join(event.changed) or "-")


@receiver.on("change.deal", changed="stage_id")
def deal_moved(event):
    app.logger.info("deal %s moved to stage %s", event.entity_id,
                    (event.data or {}).get("stage_id"))


@app.get("/")
def index():
    return jsonify(service="flask + pdwebhook", events=seen["events"])


app.wsgi_app = pdwebhook.wsgi.Middleware(receiver, app.wsgi_app, path="/pipedrive")

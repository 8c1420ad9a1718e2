"""The California-housing inference service: loads an MLflow model from
s3://$MODEL_BUCKET_NAME/$MODEL_PATH at start-up and serves /health, /ready and /predict on 0.0.0.0.

/health answers as soon as the process runs (liveness); /ready only once the model is loaded
(readiness: mldeploy's smoke test and ECS's container health check ask it); /predict takes
{"features": [[MedInc, HouseAge, AveRooms, AveBedrms, Population, AveOccup, Latitude, Longitude], ...]}
and answers {"predictions": [...], "model_path": ...}.
"""

import logging
import os
import threading

import boto3
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from app import model_store
from app.model_store import FEATURES

BUCKET = os.environ["MODEL_BUCKET_NAME"]
MODEL_PATH = os.environ["MODEL_PATH"].strip("/")

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("california-housing")
app = FastAPI(title="california-housing")
state = {"model": None, "error": None}


def load_model():
    """Downloads the model directory from S3 (AWS_ENDPOINT_URL honoured) and loads it."""
    try:
        state["model"], found = model_store.load(boto3.client("s3"), BUCKET, MODEL_PATH)
        log.info("loaded model from s3://%s/%s (%d files)", BUCKET, MODEL_PATH, found)
    except Exception as e:  # /ready says why; the process stays up for /health and the logs
        state["error"] = f"{type(e).__name__}: {e}"
        log.exception("cannot load the model from s3://%s/%s", BUCKET, MODEL_PATH)


threading.Thread(target=load_model, daemon=True).start()


class Features(BaseModel):
    features: list[list[float]]


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/ready")
def ready():
    if state["model"] is None:
        raise HTTPException(503, state["error"] or "loading the model")
    return {"status": "ready", "model_path": MODEL_PATH}


@app.post("/predict")
def predict(body: Features):
    if state["model"] is None:
        raise HTTPException(503, state["error"] or "loading the model")
    if any(len(row) != len(FEATURES) for row in body.features):
        raise HTTPException(422, f"each row needs {len(FEATURES)} features: {', '.join(FEATURES)}")
    frame = pd.DataFrame(body.features, columns=FEATURES)
    predictions = state["model"].predict(frame)
    return {"predictions": [float(p) for p in predictions], "model_path": MODEL_PATH}

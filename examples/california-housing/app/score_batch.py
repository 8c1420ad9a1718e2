"""The batch scorer, a worker beside the inference API ([workers.scorer] in mldeploy.toml): it
loads the same model (s3://$MODEL_BUCKET_NAME/$MODEL_PATH), then every $SCORE_EVERY seconds reads
rows of features from s3://$MODEL_BUCKET_NAME/$INPUTS_KEY ({"features": [[...8 numbers], ...]})
and prints one line per row: `score <row> <prediction> (model <MODEL_PATH>)`.

The worker's task role reads only the model's prefix, so the inputs live under it. A missing or
bad input file is said and tried again on the next round: the worker keeps running.
"""

import json
import logging
import os
import sys
import tempfile
import time

import boto3
import mlflow.pyfunc
import pandas as pd

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]
BUCKET = os.environ["MODEL_BUCKET_NAME"]
MODEL_PATH = os.environ["MODEL_PATH"].strip("/")
INPUTS_KEY = os.environ["INPUTS_KEY"]
EVERY = float(os.environ.get("SCORE_EVERY", "60"))

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("scorer")


def download(s3, prefix):
    """The objects under `prefix` in a temporary directory."""
    target = tempfile.mkdtemp(prefix="model-")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) + 1:]
            if not relative or relative.endswith("/"):
                continue
            local = os.path.join(target, relative)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            s3.download_file(BUCKET, obj["Key"], local)
    return target


def score_once(s3, model):
    """Scores the input file once; False when there was nothing to score."""
    try:
        body = s3.get_object(Bucket=BUCKET, Key=INPUTS_KEY)["Body"].read()
        rows = json.loads(body)["features"]
    except Exception as e:  # said, and tried again next round
        log.warning("no inputs at s3://%s/%s: %s", BUCKET, INPUTS_KEY, e)
        return False
    predictions = model.predict(pd.DataFrame(rows, columns=FEATURES))
    for i, p in enumerate(predictions):
        print(f"score {i} {float(p):.4f} (model {MODEL_PATH})", flush=True)
    return True


def main():
    s3 = boto3.client("s3")
    model = mlflow.pyfunc.load_model(download(s3, MODEL_PATH))
    log.info("loaded model from s3://%s/%s; scoring s3://%s/%s every %s s", BUCKET, MODEL_PATH, BUCKET, INPUTS_KEY, EVERY)
    while True:
        score_once(s3, model)
        time.sleep(EVERY)


if __name__ == "__main__":
    sys.exit(main())

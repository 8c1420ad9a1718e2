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
import time

import boto3
import pandas as pd

from app import model_store
from app.model_store import FEATURES

BUCKET = os.environ["MODEL_BUCKET_NAME"]
MODEL_PATH = os.environ["MODEL_PATH"].strip("/")
INPUTS_KEY = os.environ["INPUTS_KEY"]
EVERY = float(os.environ.get("SCORE_EVERY", "60"))

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("scorer")


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
    model, _ = model_store.load(s3, BUCKET, MODEL_PATH)
    log.info("loaded model from s3://%s/%s; scoring s3://%s/%s every %s s", BUCKET, MODEL_PATH, BUCKET, INPUTS_KEY, EVERY)
    while True:
        score_once(s3, model)
        time.sleep(EVERY)


if __name__ == "__main__":
    sys.exit(main())

"""What the API and the batch scorer share: the model's feature names, and the model directory
s3://<bucket>/<prefix> downloaded (AWS_ENDPOINT_URL honoured) and loaded with MLflow."""

import os
import tempfile

import mlflow.pyfunc

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]


def download(s3, bucket, prefix):
    """The objects under `prefix` in a temporary directory, and how many there were."""
    target = tempfile.mkdtemp(prefix="model-")
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) + 1:]
            if not relative or relative.endswith("/"):
                continue
            local = os.path.join(target, relative)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            s3.download_file(bucket, obj["Key"], local)
            found += 1
    return target, found


def load(s3, bucket, prefix):
    """The MLflow model at s3://<bucket>/<prefix>, and how many files it had; a prefix without
    an MLmodel file is an error that says so."""
    target, found = download(s3, bucket, prefix)
    if not os.path.exists(os.path.join(target, "MLmodel")):
        raise RuntimeError(f"s3://{bucket}/{prefix}/MLmodel is missing ({found} objects under the prefix)")
    return mlflow.pyfunc.load_model(target), found

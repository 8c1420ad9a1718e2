"""Trains an XGBoost regressor on the California-housing schema (eight features, median house
value in units of 100,000 USD), logs it with MLflow as `california-housing`, and exports the MLflow
model directory (with its MLmodel file) to s3://<bucket>/mlflow/models/california-housing/<version>/.
With MLFLOW_TRACKING_URI set, the run and the registered version are on that tracking server, and
the experiment keeps its artifacts in the bucket (s3://<bucket>/mlflow/experiments/<name>/).

    python train.py --bucket my-models --version 1

The real data set (scikit-learn's fetch_california_housing) is downloaded when the internet is
reachable; otherwise, or with --generated-data, the model trains on generated data of the same
schema, and says so. S3 is
whatever boto3 reaches (AWS_ENDPOINT_URL is honoured, so the local sandbox works).
"""

import argparse
import os
import tempfile

import boto3
import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost as xgb

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]


def data(seed, generated):
    if generated:
        print("training on generated data of the California-housing schema (--generated-data)")
        return generate(seed)
    try:
        from sklearn.datasets import fetch_california_housing

        frame = fetch_california_housing(as_frame=True)
        print("training on the California-housing data set")
        return frame.data[FEATURES], frame.target
    except Exception as e:  # no scikit-learn, or no internet to download the data set
        print(f"the data set is not available ({type(e).__name__}): training on generated data of the same schema")
    return generate(seed)


def generate(seed):
    """Data of the California-housing schema, with a plausible relation to the target."""
    rng = np.random.default_rng(seed)
    n = 5000
    x = pd.DataFrame({
        "MedInc": rng.gamma(4.0, 1.0, n),
        "HouseAge": rng.integers(1, 52, n).astype(float),
        "AveRooms": rng.normal(5.4, 1.2, n).clip(1),
        "AveBedrms": rng.normal(1.1, 0.2, n).clip(0.5),
        "Population": rng.gamma(2.0, 700.0, n),
        "AveOccup": rng.normal(3.0, 0.8, n).clip(1),
        "Latitude": rng.uniform(32.5, 42.0, n),
        "Longitude": rng.uniform(-124.3, -114.3, n),
    })
    y = (0.45 * x["MedInc"] + 0.01 * x["HouseAge"] - 0.05 * (x["Latitude"] - 35) + rng.normal(0, 0.3, n)).clip(0.15, 5.0)
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--version", required=True, help="the version number to export as")
    ap.add_argument("--prefix", default="mlflow/models/california-housing")
    ap.add_argument("--registered-model", default="california-housing",
                    help="the MLflow registered model (and experiment) to log and register into")
    ap.add_argument("--n-estimators", type=int, default=50)
    ap.add_argument("--generated-data", action="store_true",
                    help="do not try to download the data set: train on generated data of its schema")
    args = ap.parse_args()

    x, y = data(seed=int(args.version), generated=args.generated_data)
    model = xgb.XGBRegressor(n_estimators=args.n_estimators, max_depth=6, learning_rate=0.1)
    model.fit(x, y)
    if "MLFLOW_TRACKING_URI" not in os.environ:
        # No tracking server: a local file store (MLflow 3 asks for this to be said explicitly).
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        print("no MLFLOW_TRACKING_URI: logging the run to ./mlruns")
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", f"file://{os.path.abspath('mlruns')}"))
    name = args.registered_model
    # The experiment keeps its artifacts in the model bucket, so each registered version's
    # storage location is under it (mldeploy refuses a registry version stored elsewhere).
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=f"s3://{args.bucket}/mlflow/experiments/{name}")
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=f"{name}-v{args.version}"):
        mlflow.log_params({"n_estimators": args.n_estimators, "max_depth": 6})
        mlflow.log_metric("train_rmse", float(np.sqrt(np.mean((model.predict(x) - y) ** 2))))
        logged = mlflow.xgboost.log_model(
            model, name="model", input_example=x.head(2), registered_model_name=name
        )
    print(f"registered {name} as MLflow model version {logged.registered_model_version}")
    # The exported directory is exactly what MLflow logged: MLmodel, the model, its environment.
    export = mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=tempfile.mkdtemp())

    s3 = boto3.client("s3")
    prefix = f"{args.prefix}/{args.version}"
    for root, _, files in os.walk(export):
        for file in files:
            path = os.path.join(root, file)
            key = f"{prefix}/{os.path.relpath(path, export)}"
            s3.upload_file(path, args.bucket, key)
    print(f"exported {name} version {args.version} to s3://{args.bucket}/{prefix}/")


if __name__ == "__main__":
    main()

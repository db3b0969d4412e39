"""Trains an ElasticNet on the red wine quality data and logs it to MLflow.

Logs the parameters (alpha, l1_ratio), the test metrics (rmse, mae, r2), the model with its
signature and an input example, and registers it as a new version of --model-name.

The tracking server comes from the environment, as for any MLflow client:
    MLFLOW_TRACKING_URI=https://<tracking-ip>  MLFLOW_TRACKING_USERNAME=...  MLFLOW_TRACKING_PASSWORD=...
    MLFLOW_TRACKING_SERVER_CERT_PATH=<the servers' CA certificate: orm-pack apply saves it>

    python train.py --alpha 0.5 --l1-ratio 0.5
"""
import argparse
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

DATA = Path(__file__).resolve().parent / "winequality-red.csv"
TARGET = "quality"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.5, help="regularization strength (default 0.5)")
    parser.add_argument("--l1-ratio", type=float, default=0.5, help="L1 share of the penalty, 0..1 (default 0.5)")
    parser.add_argument("--experiment-name", default="wine-quality", help="MLflow experiment (default wine-quality)")
    parser.add_argument("--model-name", default="wine-quality",
                        help="registered model name (default wine-quality); empty string: do not register")
    parser.add_argument("--data", type=Path, default=DATA, help="CSV with the 11 features and 'quality'")
    args = parser.parse_args(argv)
    if args.alpha < 0:
        parser.error("--alpha must be >= 0")
    if not 0 <= args.l1_ratio <= 1:
        parser.error("--l1-ratio must be between 0 and 1")
    if not args.data.is_file():
        parser.error(f"--data {args.data} does not exist")
    return args


def load_data(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(path)
    if TARGET not in frame.columns:
        raise SystemExit(f"{path} has no '{TARGET}' column; expected the UCI red wine quality CSV")
    return frame.drop(columns=[TARGET]), frame[TARGET]


def train(args: argparse.Namespace):
    features, target = load_data(args.data)
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.25, random_state=42)

    mlflow.set_experiment(args.experiment_name)
    with mlflow.start_run() as run:
        model = ElasticNet(alpha=args.alpha, l1_ratio=args.l1_ratio, random_state=42)
        model.fit(x_train, y_train)
        predicted = model.predict(x_test)
        metrics = {
            "rmse": float(np.sqrt(mean_squared_error(y_test, predicted))),
            "mae": float(mean_absolute_error(y_test, predicted)),
            "r2": float(r2_score(y_test, predicted)),
        }
        mlflow.log_params({"alpha": args.alpha, "l1_ratio": args.l1_ratio})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_train, model.predict(x_train)),
            input_example=x_train.head(3),
            registered_model_name=args.model_name or None,
        )
    return run.info.run_id, metrics, info


def main(argv=None) -> int:
    args = parse_args(argv)
    run_id, metrics, info = train(args)
    print(f"run_id={run_id} " + " ".join(f"{name}={value:.4f}" for name, value in metrics.items()))
    print(f"model_uri={info.model_uri}")
    if info.registered_model_version:
        print(f"registered={args.model_name} version={info.registered_model_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fashion-MNIST: data (`fmnist.data`), the CNN (`fmnist.model`) and its metrics (`fmnist.metrics`).

Knows nothing of Ray or MLflow. The model and metrics modules import Keras and matplotlib, so this
package re-exports only the light data API.
"""

from fmnist.data import CLASS_NAMES, FashionMNIST, Split, load, stratified_split, stratified_subset
from fmnist.errors import DatasetError

__all__ = ["CLASS_NAMES", "DatasetError", "FashionMNIST", "Split", "load", "stratified_split", "stratified_subset"]

"""A small MNIST classifier: the judge of sample quality for every generative model in the zoo.

Its penultimate layer gives the features for the Frechet distance (FID-MNIST, as in the DTU course's
``fid.py`` and TF-GAN's MNIST score), and its confident predictions give the class histogram of
generated samples.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES, decolorize

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass
class ClassifierConfig:
    family: str = "classifier"
    dataset: str = "mnist"
    channels: int = 32  # first conv block; the second has twice as many
    feature_dim: int = 128  # width of the penultimate layer: the FID features
    n_classes: int = 10


class Classifier(HubModel):
    """conv3x3 - pool - conv3x3 - pool - fully connected (features) - logits, on images in [0, 1]."""

    config_class = ClassifierConfig
    config_limits = {"channels": (1, 512), "feature_dim": (1, 4096), "n_classes": (1, 1000), "family": ("classifier",),
                     "dataset": DATASET_NAMES}

    def __init__(self, config: ClassifierConfig):
        super().__init__(config)
        c = config.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(2 * c * 49, config.feature_dim), nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(config.feature_dim, config.n_classes)

    def describe(self) -> str:
        c = self.config
        return (f"Two 3x3 convolutions ({c.channels} and {2 * c.channels} channels, ReLU, each followed by 2x2 "
                f"max pooling), a {c.feature_dim}-unit fully connected layer (the features used for the Frechet "
                f"distance) and a linear layer to {c.n_classes} class logits. Trained on {c.dataset} with "
                f"cross-entropy; inputs are images in [0, 1], standardised inside the model.")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations (B, feature_dim) of images in [0, 1] shaped (B, 1, 28, 28)."""
        return self.body((x - MNIST_MEAN) / MNIST_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, n_classes)."""
        return self.head(self.dropout(self.features(x)))

    @staticmethod
    def shapes(x: torch.Tensor) -> torch.Tensor:
        """What the judge reads of images: grey ones as they are, colour ones (coloured MNIST) as the grey shape
        ``decolorize`` splits from their two colours."""
        return decolorize(x)[0] if x.shape[1] == 3 else x

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities (B, n_classes) of grey or colour images (see ``shapes``), in batches."""
        x = self.shapes(x)
        return torch.cat([F.softmax(self(x[i:i + batch_size]), -1) for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def all_features(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """``features`` of many grey or colour images (see ``shapes``), in batches."""
        x = self.shapes(x)
        return torch.cat([self.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

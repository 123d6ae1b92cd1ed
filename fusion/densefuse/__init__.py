"""DenseFuse (Li & Wu, IEEE TIP 2019): a dense-block autoencoder trained on single images, fused in
feature space. `config` holds the parameters, `model` the network, `rules` the feature fusion
rules, `loss` the pixel + SSIM objective and `train` the training loop the pipeline runs."""

from fusion.densefuse.config import DenseFuseConfig
from fusion.densefuse.model import DenseFuseNet
from fusion.densefuse.train import load_densefuse, train_densefuse

__all__ = ["DenseFuseConfig", "DenseFuseNet", "load_densefuse", "train_densefuse"]

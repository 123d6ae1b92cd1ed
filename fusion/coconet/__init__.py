"""CoCoNet (Liu et al., IJCV 2024): coupled contrastive learning with a multi-level feature ensemble.

- `network.CoCoNet`: the fusion network (grey infrared + grey visible in, fused grey out, [0, 1]).
- `vgg`: the frozen one-channel VGG19 shared by the network and the contrastive loss.
- `losses`: self-adaptive weights, SSIM + MSE fidelity and the coupled contrastive loss.
- `config.CoCoNetConfig`: the `fusion.coconet` section of params.yaml.
- `train.train_coconet`: two-stage training from a prepared dataset, resumable.
- `inference`: checkpoint loading and tiled inference behind the `coconet` registry method.

Submodules are imported on demand so `import fusion.coconet` stays cheap.
"""

"""YOLO object detection on fused images (ultralytics, offline), evaluated two independent ways.

Modules: config (DetectConfig), offline (ultralytics set-up), dataset (links into a work folder),
evaluate (pixel records, mAP by torchmetrics and ultralytics), yolo (trainer/validator
subclasses), train (`train_and_evaluate`).
"""

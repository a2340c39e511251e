"""Train a video classifier with Saliency Tubes logged every epoch.

python train.py                       # fit on the built-in synthetic dataset (configs/default.yaml)
python train.py fit --config configs/default.yaml --data.root DIR --trainer.max_epochs 3
"""

from saliency_tubes.cli.train import main

if __name__ == "__main__":
    main()

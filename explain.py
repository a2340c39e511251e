"""Explain videos with Saliency Tubes from a checkpoint.

python explain.py --checkpoint checkpoints/RUN/last.ckpt video.mp4 more_videos/ --out explanations
"""

from saliency_tubes.cli.explain import main

if __name__ == "__main__":
    main()

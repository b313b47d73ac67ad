"""nbimgprep: prepare images in Jupyter with fal.ai models, behind a persistent cache."""

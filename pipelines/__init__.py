"""Thin stage entry points: each module parses its arguments, reads its params.yaml section, calls
library code in fusion/, detection/, segmentation/ and mmif/, and writes its declared outputs
atomically. `mmif <stage>` runs them; dvc.yaml calls `mmif`."""

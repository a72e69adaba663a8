"""The embedded local AWS: moto's server plus the parts of AWS that moto does not play (event delivery to
in-process Lambda handlers, ECR/CloudTrail events, the image scanner). Development and test tooling only; it is
not shipped in the Lambda layer."""

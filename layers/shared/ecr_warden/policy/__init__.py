"""The scan policy: which findings block or tag an image, where, and which CVEs are exempt until when."""

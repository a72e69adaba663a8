"""Notifications: Slack (Block Kit over incoming webhooks) and SNS, with noise control and failure isolation."""

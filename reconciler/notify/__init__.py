"""Notifications: what the daemon tells a webhook (Slack-compatible) when a sync fails,
recovers or drifts. ``events`` decides and words them (pure); ``send`` posts them."""

"""Alert delivery: one module per channel behind one small interface (base.Sender), chosen by
`type` from the config, fed by the persistent outbox (outbox.py)."""

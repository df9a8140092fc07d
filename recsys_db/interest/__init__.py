"""The interest-state model: behavior sequences -> recurrent user state -> vectors in pgvector.

The constants below are shared by the live updater (interest/live.py) and `recsys-db doctor`,
which must not import torch.
"""

LOOKBACK_IDS = 2_000  # re-scan this many event ids below the watermark (late-committing inserts)


def watermark_key(version: int) -> str:
    """recsys.meta key of the live updater's event-id watermark for interest `version`."""
    return f"interest_watermark_v{version}"

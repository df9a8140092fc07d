"""The interest-state model: behavior sequences -> recurrent user state -> vectors in pgvector."""

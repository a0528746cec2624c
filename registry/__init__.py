"""The registry: immutable, versioned, hashed and signed AI artifacts."""

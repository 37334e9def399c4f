"""One module per protocol, all with the face of ``base.ProtocolAdapter``; ``registry`` maps config kinds."""

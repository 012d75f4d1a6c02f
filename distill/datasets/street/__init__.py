"""The synthetic street renderer: CamVid-like scenes drawn procedurally, with domain shifts."""

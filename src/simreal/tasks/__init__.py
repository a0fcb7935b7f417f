"""Task definitions: classify, segment, detect, reid."""

"""The MyVox VoiceRecorder feature: developers, voice recorders, recording lists, recordings and
recording sessions, served as MyVox 1.11 (`/vr`) and REST/JSON (`/v1`)."""

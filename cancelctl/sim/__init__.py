"""The built-in venue simulator (Gemini and Pacifica on 127.0.0.1), for tests, the demo and rehearsals."""

//! A scripted OpenAI-compatible model server.

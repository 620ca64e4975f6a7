from agent_service.cli import app

app()

from agent_service.cli import main

main()

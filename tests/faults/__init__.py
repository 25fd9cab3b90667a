"""The fault suite (``-m slow``): real worker processes killed, broker and database servers
stopped and restarted; each test reports the deletion requests it lost and applied twice
(goal: 0 and 0)."""

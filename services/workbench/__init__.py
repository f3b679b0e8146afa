"""The workbench: the pages call-centre agents, dispatchers, departments and
citizens work in. A backend-for-frontend that calls the other services' public
HTTP APIs with the signed-in user's key and keeps nothing but sessions."""

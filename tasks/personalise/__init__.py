"""Personalised renditions: the shared, cached base clip plus one user's overlay."""

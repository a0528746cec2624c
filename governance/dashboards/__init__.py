"""The project's dashboards: the readiness dashboard's reads (``selectors``) and what its page
draws from them (``presenters``: the lead-time chart). The pages are ``governance.views``."""

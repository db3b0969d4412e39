"""What plan, apply and destroy do with a Resource Manager stack, what a plan changes and what it costs."""

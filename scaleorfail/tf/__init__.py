"""Reading the project's Terraform without Terraform: HCL expressions, templates, modules."""

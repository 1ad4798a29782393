variable "name" {
  description = "Name the bucket's generated name starts with (lower-cased, at most 29 characters kept)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,62}$", lower(var.name)))
    error_message = "name must be 3-63 letters, digits and '-', starting with a letter or digit."
  }
}

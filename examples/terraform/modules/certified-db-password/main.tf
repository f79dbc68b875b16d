# A database password generated to a compliance preset, certified by a PassGeni
# authority and stored in Vault (KV v2) by passgeni-terraform-external.
# Store mode: only references (certificate id/URL, version...) reach the state.

terraform {
  required_providers {
    external = {
      source  = "hashicorp/external"
      version = ">= 2.3"
    }
  }
}

variable "vault_path" {
  description = "KV v2 location as MOUNT/PATH, e.g. secret/prod/billing-db"
  type        = string
}

variable "key" {
  description = "Field of the secret that holds the password"
  type        = string
  default     = "password"
}

variable "preset" {
  description = "Compliance preset: soc2, pci-dss, hipaa, iso-27001, nist-800-63b, fips-140-3"
  type        = string
  default     = "soc2"
}

variable "keeper" {
  description = "Rotation epoch: change it (e.g. to a date) to rotate the password"
  type        = string
}

variable "length" {
  description = "Password length (empty: the preset's default)"
  type        = string
  default     = ""
}

variable "exclude" {
  description = "Characters your database driver or connection string cannot take"
  type        = string
  default     = "@/:?#%&\"'\\"
}

data "external" "password" {
  program = ["passgeni-terraform-external"]

  # Every value is a string (the external protocol). No API key here: query
  # values are written to the state; set PASSGENI_API_KEY in the environment.
  query = {
    preset      = var.preset
    destination = "vault://${var.vault_path}#${var.key}"
    keeper      = var.keeper
    length      = var.length
    exclude     = var.exclude
    mode        = "store"
  }
}

output "cert_id" {
  value = data.external.password.result.cert_id
}

output "cert_url" {
  description = "Public certificate page: give this to the auditor"
  value       = data.external.password.result.cert_url
}

output "standards_met" {
  value = split(",", data.external.password.result.standards_met)
}

output "vault_version" {
  description = "KV v2 version that holds the certified password"
  value       = data.external.password.result.version
}

output "expires_at" {
  value = data.external.password.result.expires_at
}

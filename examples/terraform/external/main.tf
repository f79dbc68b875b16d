# The older way: passgeni-terraform-external through HashiCorp's `external` data
# source. Terraform reads data sources during `plan`, so the program's default
# mode only reads and judges what is stored (status: valid, no_certificate,
# drifted, revoked, expired...) and writes nothing. Prefer the passgeni provider
# (../main.tf), which writes at apply only.

terraform {
  required_providers {
    external = {
      source  = "hashicorp/external"
      version = ">= 2.3"
    }
  }
}

variable "destination" {
  type    = string
  default = "vault://secret/prod/billing-db#password"
}

data "external" "billing_db" {
  program = ["passgeni-terraform-external"]

  # Every value is a string. No API key here: query values are written to the
  # state; the program reads PASSGENI_API_KEY from the environment.
  query = {
    preset      = "pci-dss"
    destination = var.destination
    keeper      = "2026-11-22"
    # mode = "ensure" would generate, certify and store when the keeper changes:
    # also during `terraform plan`. Use the provider's resource for that.
  }
}

output "status" {
  value = data.external.billing_db.result.status
}

output "cert_url" {
  value = data.external.billing_db.result.cert_url
}

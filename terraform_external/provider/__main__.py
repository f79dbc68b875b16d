"""``python -m terraform_external.provider``: the plugin, under the name Terraform expects."""

import sys

from terraform_external.provider import main

sys.argv[0] = "terraform-provider-passgeni"
main()

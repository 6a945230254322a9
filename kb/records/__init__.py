"""Records: patient files, workbooks and EHR imports (wide, FHIR, OMOP), read and normalised."""

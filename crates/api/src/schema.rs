//! OpenAPI schemas and list parameters of the CRM records, generated from
//! each model's description in `domain`: a field added to an entity shows
//! up here with no change to this crate.

use domain::Spec;
use domain::record::{Field, Kind, ListFilter, Owner};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Required};

/// Which shape of a record a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// As the API returns it.
    Record,
    /// A create body.
    Create,
    /// A PATCH body.
    Patch,
}

fn typed(ty: Type, nullable: bool) -> ObjectBuilder {
    let schema_type = if nullable {
        SchemaType::Array(vec![ty, Type::Null])
    } else {
        SchemaType::Type(ty)
    };
    ObjectBuilder::new().schema_type(schema_type)
}

fn known(format: KnownFormat) -> Option<SchemaFormat> {
    Some(SchemaFormat::KnownFormat(format))
}

/// The schema of one field's values.
fn field(f: &Field, nullable: bool) -> ObjectBuilder {
    match f.kind {
        Kind::Uuid => typed(Type::String, nullable).format(known(KnownFormat::Uuid)),
        Kind::Text { min, max, .. } => typed(Type::String, nullable)
            .min_length((min > 0).then_some(min))
            .max_length(Some(max)),
        Kind::Bool => typed(Type::Boolean, nullable),
        Kind::Date => typed(Type::String, nullable).format(known(KnownFormat::Date)),
        Kind::Timestamp => typed(Type::String, nullable).format(known(KnownFormat::DateTime)),
        Kind::Version => typed(Type::Integer, nullable).format(known(KnownFormat::Int64)),
        Kind::Choice(set) => typed(Type::String, nullable).enum_values(Some(set.iter().copied())),
        Kind::Custom => typed(Type::Object, nullable)
            .additional_properties(Some(ObjectBuilder::new()))
            .description(Some(
                "The tenant's custom fields, by key, checked against its field sets \
                 (`GET /api/v1/field-sets`). Written whole: the object given replaces \
                 the record's. Filter lists with `custom.<key>=value`.",
            )),
    }
}

fn note(f: &Field) -> Option<String> {
    let mut parts = Vec::new();
    match f.owner {
        Owner::Key => parts.push("A client-minted id; a new one is made when absent.".to_owned()),
        Owner::CreateOnly => parts.push("Set on create; fixed afterwards.".to_owned()),
        Owner::Author => parts.push("The user who created the record.".to_owned()),
        Owner::Server => parts.push("Set by the server.".to_owned()),
        Owner::Client | Owner::Private => {}
    }
    if let Some(v) = f.initial {
        parts.push(format!("Default `{}`.", v.json()));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The object schema of `spec` in `shape`.
pub fn object(spec: &Spec, shape: Shape) -> ObjectBuilder {
    let mut obj = ObjectBuilder::new().schema_type(Type::Object);
    for f in spec.fields.iter().filter(|f| f.public()) {
        let included = match shape {
            Shape::Record => true,
            Shape::Create => matches!(f.owner, Owner::Key | Owner::Client | Owner::CreateOnly),
            Shape::Patch => f.owner == Owner::Client,
        };
        if !included {
            continue;
        }
        let nullable = match shape {
            Shape::Record => f.nullable,
            Shape::Create => f.nullable || f.owner == Owner::Key,
            Shape::Patch => f.nullable,
        };
        obj = obj.property(f.name, field(f, nullable).description(note(f)));
        let required = match shape {
            Shape::Record => true,
            Shape::Create => !f.nullable && f.initial.is_none() && f.owner != Owner::Key,
            Shape::Patch => false,
        };
        if required {
            obj = obj.required(f.name);
        }
    }
    match shape {
        Shape::Record => {
            for (name, _) in spec.meta.computed {
                let items = ArrayBuilder::new().items(typed(Type::String, false));
                obj = obj.property(*name, items).required(*name);
            }
        }
        Shape::Patch => {
            obj = obj.property(
                "version",
                typed(Type::Integer, false)
                    .format(known(KnownFormat::Int64))
                    .description(Some(
                        "The version the change was made against (or send If-Match).",
                    )),
            );
        }
        Shape::Create => {}
    }
    obj
}

/// The schema of `spec` in `shape`.
pub fn schema(spec: &Spec, shape: Shape) -> RefOr<Schema> {
    RefOr::T(Schema::Object(object(spec, shape).build()))
}

/// The query parameters of `spec`'s list: paging and its filters.
pub fn list_params(spec: &Spec) -> Vec<Parameter> {
    let param = |name: &str, schema: ObjectBuilder, doc: String| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .schema(Some(schema))
            .description(Some(doc))
            .build()
    };
    let mut out = vec![
        param(
            "limit",
            typed(Type::Integer, false),
            format!(
                "1 to {}; default {}.",
                domain::list::MAX_LIMIT,
                domain::list::DEFAULT_LIMIT
            ),
        ),
        param(
            "cursor",
            typed(Type::String, false),
            "The `next_cursor` of the previous page.".into(),
        ),
        param(
            "order",
            typed(Type::String, false),
            format!("{}; prefix - for descending.", spec.meta.sorts.join(", ")),
        ),
    ];
    for filter in spec.meta.filters {
        let (schema, doc) = match filter {
            ListFilter::Eq(name) => match spec.field(name) {
                Some(f) => (
                    field(f, false),
                    format!("Only records whose {name} is this."),
                ),
                None => continue,
            },
            ListFilter::Search(_) => (
                typed(Type::String, false),
                "Case-insensitive substring; `%` and `_` match themselves.".into(),
            ),
            ListFilter::OnOrBefore(_, col) => (
                typed(Type::String, false).format(known(KnownFormat::Date)),
                format!("{col} on or before this date."),
            ),
            ListFilter::OnOrAfter(_, col) => (
                typed(Type::String, false).format(known(KnownFormat::Date)),
                format!("{col} on or after this date."),
            ),
            ListFilter::HasRole => (
                typed(Type::String, false),
                "Users holding this role.".into(),
            ),
        };
        out.push(param(filter.param(), schema, doc));
    }
    out
}
